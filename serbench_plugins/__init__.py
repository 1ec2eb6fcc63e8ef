"""Built-in serbench plugins, registered through the `serbench` entry-point group."""
