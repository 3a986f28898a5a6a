"""A black-box attack to start from: random search with ranks alone. The attacker has no model; it uploads
query images and the oracle says where each would rank in the lists of a few accounts the merchant controls,
against a budget of queried images. Each round proposes a random ±step change of every cold image (from the
item's own generator) and keeps it where the mean rank improves. `aipbench submission context blackbox` lists
all that the context holds."""

import numpy as np


class Attack:
    rounds = 20  # one query of every cold image per round (the budget allows far more: context.oracle.remaining)
    step = 8  # 8-bit units per proposal

    def run(self, context):
        oracle, n, eps = context.oracle, context.n_items, context.epsilon
        original = context.cold_images.astype(np.int16)
        best = original.copy()
        best_rank = oracle.query(best.astype(np.uint8)).mean(1)  # ranks: N × probe users, lower is better
        rngs = [context.item_rng(item) for item in context.cold_items]  # the same draws however items are split
        rounds = min(self.rounds, oracle.remaining // n)
        for r in range(rounds):
            signs = np.stack([rng.choice(np.array([-1, 1], np.int16), size=original.shape[1:]) for rng in rngs])
            candidate = np.clip(best + self.step * signs, original - eps, original + eps).clip(0, 255)
            rank = oracle.query(candidate.astype(np.uint8)).mean(1)
            better = rank < best_rank
            best[better], best_rank[better] = candidate[better], rank[better]
            context.progress(r + 1, rounds)
        return best.astype(np.uint8)  # uint8, N×3×H×W, in the order of context.cold_items
