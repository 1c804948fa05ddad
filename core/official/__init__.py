"""Reading the checkpoints that the official EpiGRAF code writes (`network-snapshot-*.pkl`).

`unpickle` loads such a pickle without executing anything from it (a restricted unpickler: the
modules become inert records), `epigraf` turns the records into our config and state dicts, and
`load_official` gives the same in-memory checkpoint dict as `core.checkpoint.load_checkpoint`.
"""
