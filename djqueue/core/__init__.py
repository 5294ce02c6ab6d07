"""The core: records, states, ids, the codec, settings, the task registry and running a
task's function. Nothing here touches the database; every other layer may import it."""
