"""Sub-commands of the `fgnet` command line; each module defines `register(subparsers)`."""
