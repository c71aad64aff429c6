"""The Compose import (`python -m templates_src import-compose`), split by what it translates:
reading (YAML, .env, interpolation), services, networks (ports, listeners, reach), secrets, volumes
(and files), explain (the written app.yaml), with context the state they share and command the
command itself. Reads the model in templates_src.app and renders with templates_src.render."""
