"""The package version, in a leaf module that the report and the CLI import without the package."""

__version__ = "0.1.0"
