"""The command line's commands (`python -m outcomes COMMAND`), grouped by what they work on."""
