"""Front-end tests: each reads real framework files and compares with the framework itself."""
