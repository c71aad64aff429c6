"""One module per nested stack (main, iam, network, ...), with the parameters and outputs that wire
them together (links, wiring). Reads the model in templates_src.app; nothing here imports render,
plan or compose."""
