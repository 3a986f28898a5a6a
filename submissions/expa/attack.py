"""EXPA (paper §4.2, Eq. 7) as an aipbench code submission: the expert's attack."""

from aipbench.attacks.expa import expa


class EXPA:
    """Adam (lr 0.01, cosine-annealed) on an L∞-bounded δ for all cold images at once, minimizing
    ‖Φ(x + δ) − Φ(x_hook)‖₂. The authors' code runs 5,000 constant-rate Adam steps per image; with the
    annealed rate these step counts reach a lower Eq. 7 value on synthetic-v1 (benchmarks/bench_expa.py)."""

    steps = {"extractor": 500, "dvbpr": 1000}
    learning_rate = 0.01
    batch_size = 250

    def run(self, context):
        return expa(context.image_model, context.cold_images, context.hook_image, epsilon=context.epsilon,
                    steps=self.steps[context.image_model_name], learning_rate=self.learning_rate,
                    schedule="cosine", device=context.device, batch_size=self.batch_size, progress=True)
