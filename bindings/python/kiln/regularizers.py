"""keras.regularizers: L1, L2, L1L2 (and l1, l2, l1_l2 with TF 2.x's defaults of 0.01)."""
from . import ops


class Regularizer:
    _class_name = None

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, x):
        total = 0.0
        if self.l1:
            total = total + self.l1 * ops.reduce_sum(ops.abs(x))
        if self.l2:
            total = total + self.l2 * ops.reduce_sum(ops.square(x))
        return total

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _kiln_serialize(self):
        return {"class_name": self._class_name, "config": self.get_config()}


class L1(Regularizer):
    _class_name = "L1"

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    _class_name = "L2"

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    _class_name = "L1L2"


def l1(l1=0.01):
    return L1(l1)


def l2(l2=0.01):
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):  # noqa: F811 - keras's name
    return L1L2(l1=l1, l2=l2)
