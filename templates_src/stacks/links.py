"""Every value that crosses a stack boundary, named once.

The root template reads like a table of these: each is published by exactly one stack (or is a
root parameter) and consumed by name; wiring.connect checks that. Per-service lists come once per
services stack (`grouped`): a large app's services are split over several (see quotas).
"""
from templates_src.app import peer_groups, quotas
from templates_src.app.config import App, Published, Service
from templates_src.stacks.wiring import Link, ListLink


def _services(app: App) -> tuple[str, ...]:
    return tuple(s.name for s in app.services)


def _awsvpc_services(app: App) -> tuple[str, ...]:
    """Services with their own task interface: a security group and a Cloud Map name each."""
    return tuple(s.name for s in app.awsvpc_services)


def _public_services(app: App) -> tuple[str, ...]:
    return tuple(s.name for s in app.public_services)


def _secrets(app: App) -> tuple[str, ...]:
    return tuple(app.secrets)


# Root parameters: what varies per deployment.
ENVIRONMENT_NAME = Link("EnvironmentName", "Prefix of every resource name (lowercase, at most 12 characters)")
INSTANCE_TYPE = Link("InstanceType", "EC2 instance type of the ECS hosts")
MIN_SIZE = Link("MinSize", "Fewest ECS hosts (managed scaling adds what the tasks need, up to MaxSize)", "Number")
MAX_SIZE = Link("MaxSize", "Most ECS hosts", "Number")
IMAGE_TAG = Link("ImageTag", "Tag of the images pushed to this app's ECR repositories")
INGRESS_CIDR = Link("AllowedIngressCidr", "Addresses that may reach the load balancer's listeners")
SERVICES_RUNNING = Link("ServicesRunning", "false creates every ECS service with no tasks: a first deploy learns the "
                        "load balancer's URL before the images that inline it are built")
DOMAIN_NAME = Link("DomainName", "Name the app is served at over HTTPS, e.g. dks.example.com; empty: HTTP on the load "
                   "balancer's own name")
HOSTED_ZONE_ID = Link("HostedZoneId", "Route 53 public hosted zone holding DomainName (Z..., without /hostedzone/): "
                      "the certificate is validated and the alias record written there; empty: none")
CERTIFICATE_ARN = Link("CertificateArn", "ACM certificate for DomainName made elsewhere; empty: made here when "
                       "HostedZoneId is given")
ACCESS_LOGS_BUCKET = Link("AccessLogsBucket", "S3 bucket (with the ELB log delivery policy) for the load "
                                              "balancer's access logs; empty: none")
ALARM_EMAIL = Link("AlarmEmail", "Address the alarms topic mails (SNS sends it a confirmation first); empty: no "
                   "subscription")
AMI_ID = Link("EcsAmiId", "ECS-optimized Amazon Linux 2023 AMI", "AWS::EC2::Image::Id")

# network
VPC_ID = Link("VpcId", "VPC of the app")
SUBNET_IDS = Link("SubnetIds", "Public subnets, one per availability zone", "CommaDelimitedList")
HOST_SECURITY_GROUP = Link("HostSecurityGroupId", "Security group of the ECS hosts")
LOAD_BALANCER_SECURITY_GROUP = Link("LoadBalancerSecurityGroupId", "Security group of the load balancer")
DATA_SECURITY_GROUP = Link("DataSecurityGroupId", "Security group of the EFS mount targets")
HOST_ADDRESSES_SECURITY_GROUP = Link("HostAddressesSecurityGroupId", "Security group of the load balancer admitting "
                                     "the hosts' public addresses (kept current by the hosts function)")
SERVICE_SECURITY_GROUPS = ListLink("ServiceSecurityGroupIds", "Security group of each awsvpc service's tasks",
                                   _awsvpc_services)
PEER_SECURITY_GROUPS = ListLink("PeerSecurityGroupIds", "Security group shared by each set of services that all reach "
                                "each other", lambda app: tuple(g.name for g in peer_groups.peer_groups(app)))

# iam
INSTANCE_PROFILE_ARN = Link("InstanceProfileArn", "Instance profile of the ECS hosts")
EXECUTION_ROLE_ARN = Link("ExecutionRoleArn", "Role ECS uses to pull images, read secrets and write logs")
TASK_ROLE_ARNS = ListLink("TaskRoleArns", "Role of each service's containers", _services)

# secrets
KEY_ARN = Link("KmsKeyArn", "KMS key of the app's secrets and log groups")
SECRET_ARNS = ListLink("SecretArns", "Generated secrets of the app", _secrets)

# storage
FILE_SYSTEM_ID = Link("FileSystemId", "EFS file system holding the services' data")
FILE_SYSTEM_ARN = Link("FileSystemArn", "ARN of the EFS file system")
ACCESS_POINT_IDS = ListLink("AccessPointIds", "EFS access point of each service with data",
                            lambda app: tuple(s.name for s in app.stored_services))

# Root parameters naming data kept from an earlier deployment (kept.py); empty makes new ones.
DATA_FILE_SYSTEM_ID = Link("DataFileSystemId", "EFS file system kept from an earlier deployment of this app, used "
                                               "instead of a new one; empty: create one")
DATA_KEY_ARN = Link("DataKeyArn", "KMS key kept from an earlier deployment (the one that encrypts the kept file "
                                  "system and secrets), used instead of a new one; empty: create one")
DATA_SECRET_ARNS = ListLink("DataSecretArns", "Secrets kept from an earlier deployment, comma-separated, used "
                                              "instead of new ones; empty: generate them", _secrets, "String")

# cluster
CLUSTER_NAME = Link("ClusterName", "ECS cluster")
CAPACITY_PROVIDER = Link("CapacityProviderName", "Capacity provider over the hosts' Auto Scaling group")
HOST_GROUP_NAME = Link("HostGroupName", "Auto Scaling group of the ECS hosts")

# discovery
NAMESPACE_ID = Link("NamespaceId", "Cloud Map private DNS namespace")
DISCOVERY_SERVICE_ARNS = ListLink("DiscoveryServiceArns", "Cloud Map service of each awsvpc service",
                                  _awsvpc_services)

# load balancer
LOAD_BALANCER_DNS = Link("LoadBalancerDnsName", "DNS name of the internet-facing load balancer")
PUBLIC_HOST = Link("PublicHost", "Host of every public URL: DomainName when given, else the load balancer's DNS name")
URL_SCHEME = Link("UrlScheme", "https when the listeners have a certificate, else http")
TARGET_GROUP_ARNS = ListLink("TargetGroupArns", "Target group of each public service", _public_services)
REQUEST_COUNT_LABELS = ListLink(
    "RequestCountLabels", "ALB request count metric label (app/<lb>/<id>/targetgroup/<tg>/<id>) of each service "
    "scaled on requests per target", lambda app: tuple(s.name for s in app.scaled_services
                                                       if s.scaling.requests_per_target))
# CloudWatch names a load balancer and a target group by the end of its ARN (app/<name>/<id>,
# targetgroup/<name>/<id>): the dimensions of their metrics.
LOAD_BALANCER_FULL_NAME = Link("LoadBalancerFullName", "The load balancer as its CloudWatch metrics name it")
TARGET_GROUP_FULL_NAMES = ListLink("TargetGroupFullNames", "Each public service's target group as its CloudWatch "
                                   "metrics name it", _public_services)

# network load balancer (ports that are not HTTP): one target group per service and port
def listener_key(svc: Service, pub: Published) -> str:
    """A Network Load Balancer port's member name in NLB_TARGET_GROUP_ARNS."""
    return f"{svc.name}-{pub.port}"


def _nlb_listeners(app: App) -> tuple[str, ...]:
    return tuple(listener_key(svc, pub) for svc, pub in app.nlb_listeners)


NLB_SECURITY_GROUP = Link("NetworkLoadBalancerSecurityGroupId", "Security group of the Network Load Balancer")
NLB_DNS = Link("NetworkLoadBalancerDnsName", "DNS name of the internet-facing Network Load Balancer")
NLB_TARGET_GROUP_ARNS = ListLink("NetworkTargetGroupArns", "Target group of each Network Load Balancer port "
                                 "(<service>-<port>)", _nlb_listeners)
NLB_FULL_NAME = Link("NetworkLoadBalancerFullName", "The Network Load Balancer as its CloudWatch metrics name it")
NLB_TARGET_GROUP_FULL_NAMES = ListLink("NetworkTargetGroupFullNames", "Each Network Load Balancer port's target group "
                                       "as its CloudWatch metrics name it", _nlb_listeners)

# alarms: what fails a public service's deployment (ECS rolls it back)
TARGET_ERROR_ALARMS = ListLink("TargetErrorAlarmNames", "Alarm on each public service's 5xx answers", _public_services)
UNHEALTHY_ALARMS = ListLink("UnhealthyTargetAlarmNames", "Alarm on each public service's unhealthy targets",
                            _public_services)

# services
SERVICE_NAMES = Link("ServiceNames", "ECS services of the app")


def suffix(group: int) -> str:
    """Names of the first services stack's links are plain; the next ones end in 2, 3, ..."""
    return "" if group == 0 else str(group + 1)


def grouped(link: ListLink, app: App, group: int) -> ListLink:
    """`link` restricted to the services of one services stack (its members in the same order)."""
    names = set(quotas.service_groups(app)[group])
    return ListLink(link.name + suffix(group), link.description,
                    lambda a: tuple(member for member in link.members(a) if member in names))


def grouped_listeners(app: App, group: int) -> ListLink:
    """NLB_TARGET_GROUP_ARNS restricted to the ports of one services stack's services."""
    names = set(quotas.service_groups(app)[group])
    return ListLink(NLB_TARGET_GROUP_ARNS.name + suffix(group), NLB_TARGET_GROUP_ARNS.description,
                    lambda a: tuple(listener_key(svc, pub) for svc, pub in a.nlb_listeners if svc.name in names))


def grouped_all(link: ListLink, app: App) -> list[ListLink]:
    """One `grouped` link per services stack that has members (a stack with no public service needs
    no target groups)."""
    found = [grouped(link, app, group) for group in range(len(quotas.service_groups(app)))]
    return [each for each in found if each.members(app)]


def service_names(group: int) -> Link:
    return Link(SERVICE_NAMES.name + suffix(group), SERVICE_NAMES.description)
