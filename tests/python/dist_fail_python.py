"""A rank that raises ends the job at once instead of leaving the others in a collective: rank 1
raises before the allreduce rank 0 waits in (ctest checks the message and that mpirun ends long
before the 60 s timeout)."""
import kiln
import kiln.distributed as kd

kd.init(timeout_seconds=60)
if kd.rank() == 1:
    raise RuntimeError("rank 1 fails on purpose")
kd.allreduce(kiln.constant([1.0]))
print("rank 0: the allreduce returned although rank 1 failed")
