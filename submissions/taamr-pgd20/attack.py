"""TAaMR with PGD-20 (paper §6.3): 20 targeted projected signed-gradient steps toward the most popular class."""

from aipbench.attacks.taamr import taamr


class PGD20:
    steps = 20

    def run(self, context):
        return taamr(context.classifier, context.cold_images, context.popular_class, epsilon=context.epsilon,
                     steps=self.steps, device=context.device, progress=True)
