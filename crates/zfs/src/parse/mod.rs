//! Pure parsers for the output of `zfs` commands.
