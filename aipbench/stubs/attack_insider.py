"""An insider attack to start from: projected gradient ascent (PGD; Madry et al., ICLR '18) on the score every
user gives the cold item, through the trained ranker the insider level grants — a small cousin of INSA
(Liu & Larson, WWW '21, Eq. 6). `aipbench submission context insider` lists all that the context holds."""

import numpy as np
import torch


class Attack:
    steps = 10  # signed-gradient steps
    step_size = 8  # 8-bit units per step: ε = 32 is reachable in 4 steps
    batch_size = 64  # cold images attacked at once (bounds memory)

    def run(self, context):
        ranker, users = context.ranker, context.user_embeddings  # granted to the insider only
        mean_user = users.vec.mean(0).to(context.device)  # the mean score over users is one dot product
        eps, alpha = context.epsilon / 255, self.step_size / 255
        out = np.empty_like(context.cold_images)
        for start in range(0, context.n_items, self.batch_size):
            part = slice(start, start + self.batch_size)
            x = torch.from_numpy(np.asarray(context.cold_images[part])).to(context.device).float() / 255
            delta = torch.zeros_like(x)
            for step in range(self.steps):
                delta.requires_grad_(True)
                with torch.enable_grad():
                    item = ranker.item_side(ranker.encode(x + delta))  # the cold image as a new item
                    score = item.vec @ mean_user + item.bias  # mean over users of <u, i> + b_i (+ user biases)
                    (grad,) = torch.autograd.grad(score.sum(), delta)
                with torch.no_grad():  # ascend, then back into the ε-ball and the valid pixels
                    delta = (delta + alpha * grad.sign()).clamp(-eps, eps)
                    delta = (x + delta).clamp(0, 1) - x
                context.progress(start * self.steps + (step + 1) * len(x), context.n_items * self.steps)
            out[part] = to_uint8(x + delta, context.cold_images[part], context.epsilon)
        return out  # uint8, N×3×H×W, in the order of context.cold_items


def to_uint8(x, original, epsilon):
    """[0, 1] floats → uint8, rounded and kept within ε of the original pixels (the harness checks it)."""
    pixels = torch.round(x.detach() * 255).cpu().numpy()
    original = np.asarray(original, dtype=np.float64)
    return np.clip(pixels, original - epsilon, original + epsilon).clip(0, 255).astype(np.uint8)
