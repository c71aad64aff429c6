"""The app model and its rules: the config as plain data (config), reading it (loading), the checks
across fields (checks) and the rules they apply (capacity, names, instance types, quotas, mirroring,
peer groups). Imports nothing else of templates_src."""
