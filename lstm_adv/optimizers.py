"""The tutorial's update rules (adadelta, rmsprop, sgd), as lists of shared-variable updates.

Deviation: the tutorial compiled each rule as two functions (``f_grad_shared`` storing the
gradients, then ``f_update``); we return the same arithmetic as one list of updates so the
training step is a single compiled call. The running averages are updated first and the step
uses the updated values, exactly as the two-call version did.

Each builder returns ``(updates, state)``: ``state`` is an ordered dict of the optimizer's
shared variables, named as the tutorial named them (``Wemb_rup2`` ...), for checkpoints.
"""

from collections import OrderedDict

import numpy as np
import pytensor


def _zeros_like(p, suffix):
    v = p.get_value()
    return pytensor.shared(np.zeros_like(v), name=f"{p.name}_{suffix}", shape=v.shape)


def adadelta(tparams, grads, lrate=None):
    """ADADELTA (Zeiler 2012) with rho=0.95, eps=1e-6; ``lrate`` is unused, as in the tutorial."""
    state, updates = OrderedDict(), []
    for name, p in tparams.items():
        g = grads[name]
        ru2, rg2 = _zeros_like(p, "rup2"), _zeros_like(p, "rgrad2")
        state[ru2.name], state[rg2.name] = ru2, rg2
        rg2_new = 0.95 * rg2 + 0.05 * g ** 2
        step = -pytensor.tensor.sqrt(ru2 + 1e-6) / pytensor.tensor.sqrt(rg2_new + 1e-6) * g
        updates += [(rg2, rg2_new), (ru2, 0.95 * ru2 + 0.05 * step ** 2), (p, p + step)]
    return updates, state


def rmsprop(tparams, grads, lrate=None):
    """The tutorial's RMSProp variant (Graves 2013: centred, with momentum 0.9, step 1e-4)."""
    state, updates = OrderedDict(), []
    for name, p in tparams.items():
        g = grads[name]
        rg, rg2, ud = _zeros_like(p, "rgrad"), _zeros_like(p, "rgrad2"), _zeros_like(p, "updir")
        state[rg.name], state[rg2.name], state[ud.name] = rg, rg2, ud
        rg_new = 0.95 * rg + 0.05 * g
        rg2_new = 0.95 * rg2 + 0.05 * g ** 2
        ud_new = 0.9 * ud - 1e-4 * g / pytensor.tensor.sqrt(rg2_new - rg_new ** 2 + 1e-4)
        updates += [(rg, rg_new), (rg2, rg2_new), (ud, ud_new), (p, p + ud_new)]
    return updates, state


def sgd(tparams, grads, lrate):
    """Plain stochastic gradient descent with a fixed learning rate."""
    return [(p, p - lrate * grads[name]) for name, p in tparams.items()], OrderedDict()


OPTIMIZERS = {"adadelta": adadelta, "rmsprop": rmsprop, "sgd": sgd}
