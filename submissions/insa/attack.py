"""INSA (paper §4.1, Eq. 6, Algorithm 1) as an aipbench code submission: the insider's attack."""

from aipbench.attacks.insa import DEFAULT_OBJECTIVE, insa


class INSA:
    """Adam on an L∞-bounded δ for every cold image at once (batched), maximizing Eq. 6 for the ranker
    in the context. The objective's form per ranker is ``DEFAULT_OBJECTIVE``: the paper writes Eq. 6 as
    a plain sum for AlexRank and VBPR and as a sum of exponentials for DVBPR; the authors' code sums
    exponentials of the full VBPR score. We follow the text for AlexRank and DVBPR and the code for
    VBPR/AMR (see aipbench.attacks.insa).

    Settings depart from the paper's §5.3.2 ("the number of epochs is set to 10 [...] Adam optimizer with the
    learning rate of 0.001 for DVBPR and 0.0001 for both VBPR and AlexRank"): there an epoch is one pass over
    all users in mini-batches (the AIP reference code: 512 users a step for DVBPR, 256 for VBPR, from a
    random δ), so about 670 Adam steps per item. Here every step sums Eq. 6 over all users at once, so 50
    full-objective steps at a rate that can reach the budget (δ in [0, 1] pixel units, zero start) do the
    work of those 670 mini-batch steps on a CPU budget; same objective, same ε, other optimizer schedule."""

    steps = 50  # Adam steps; at lr 0.01 (2.55/255 per step) δ can reach ε = 32 within 13 steps
    learning_rate = 0.01
    batch_size = 250

    def run(self, context):
        ranker = context.ranker
        return insa(ranker, context.cold_images, epsilon=context.epsilon, steps=self.steps,
                    learning_rate=self.learning_rate, objective=DEFAULT_OBJECTIVE[ranker.name],
                    batch_size=self.batch_size, progress=True)
