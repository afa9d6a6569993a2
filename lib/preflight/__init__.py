"""The preflight: one minute on the user's own device before a multi-day run (tools/preflight.py).

For the model, input size, batch size and precision of a training configuration (resolved as train.py resolves
it), it checks the invariants the training step rests on, on the device that will train (findings.py: one
Finding per check), and measures what decides whether the run fits and how fast it goes:

    numerics.py   the optimizer's update against the paper's formula in float64, the BatchNorm running variance
                  against the unbiased numpy value, a forced non-finite step leaving everything bit-identical,
                  fp16 loss scaling halving on an overflow
    measure.py    host synchronisations and host-to-device copies per step, peak memory, training-step
                  throughput, the data pipeline's samples/s per worker, shared memory
    overfit.py    does it learn on the user's data: K people trained, then their score, loss, spread, BatchNorm
                  modes and flip consistency checked (tools/preflight.py --overfit K)
    run.py        the whole preflight in order, and the device's environment
"""
from lib.preflight.findings import Finding, failures, findings_table, write_report  # noqa: F401
