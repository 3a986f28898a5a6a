"""TAaMR with FGSM (paper §6.3): one targeted signed-gradient step toward the most popular class."""

from aipbench.attacks.taamr import taamr


class FGSM:
    def run(self, context):
        return taamr(context.classifier, context.cold_images, context.popular_class, epsilon=context.epsilon,
                     steps=1, device=context.device, progress=True)
