"""An addon for `scripts/bench` only: bare mitmdump plus the one thing corsgate does to the process
(addon.gateway.freeze_startup_heap), so the report shows what that freeze is worth without corsgate."""

import gc


class FrozenHeap:
    def running(self) -> None:
        gc.collect()
        gc.freeze()


addons = [FrozenHeap()]
