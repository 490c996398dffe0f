pytest_plugins = ["nnconform.plugin"]
