"""AMR (paper §7.1, Eq. 10-11) as a training defense: replaces VBPR by AMR trained from it."""

from aipbench.rankers.training import train_amr


class AMRDefense:
    """Train AMR with the protocol's ``[rankers.amr]`` settings, starting from the undefended VBPR's
    weights (``init = "vbpr"``) — the same training ``aipbench prepare`` runs for the ``amr`` ranker,
    so the defended ranker's state equals that artifact."""

    def train(self, context):
        model, _history = train_amr(context.dataset, context.feature_extractor, context.features,
                                    context.protocol.rankers.amr, vbpr_state=context.undefended.state_dict())
        return model
