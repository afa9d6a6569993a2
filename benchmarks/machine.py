"""What every benchmark prints beside its figures: the CPU model and the load while it ran."""
import os


def cpu_name() -> str:
    with open('/proc/cpuinfo') as f:
        names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
    return names[0] if names else 'CPU'


def load_text() -> str:
    """Load average over 1, 5 and 15 minutes, e.g. '2.31/1.90/1.42'."""
    return '/'.join(f'{v:.2f}' for v in os.getloadavg())
