"""INSA (paper §4.1, Eq. 6, Algorithm 1) as an aipbench code submission: the insider's attack."""

from aipbench.attacks.insa import DEFAULT_OBJECTIVE, insa


class INSA:
    """Adam on an L∞-bounded δ for every cold image at once (batched), maximizing Eq. 6 for the ranker
    in the context. The objective's form per ranker is ``DEFAULT_OBJECTIVE``: the paper writes Eq. 6 as
    a plain sum for AlexRank and VBPR and as a sum of exponentials for DVBPR; the authors' code sums
    exponentials of the full VBPR score. We follow the text for AlexRank and DVBPR and the code for
    VBPR/AMR (see aipbench.attacks.insa)."""

    steps = 50  # Adam steps; at lr 0.01 (2.55/255 per step) δ can reach ε = 32 within 13 steps
    learning_rate = 0.01
    batch_size = 250

    def run(self, context):
        ranker = context.ranker
        return insa(ranker, context.cold_images, epsilon=context.epsilon, steps=self.steps,
                    learning_rate=self.learning_rate, objective=DEFAULT_OBJECTIVE[ranker.name],
                    batch_size=self.batch_size, progress=True)
