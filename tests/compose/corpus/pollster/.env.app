# Settings shared by web, worker and migrate
DJANGO_ALLOWED_HOSTS=*
DJANGO_LOG_LEVEL=info
SENTRY_DSN=
EMAIL_HOST=smtp.example.com
EMAIL_HOST_PASSWORD=
