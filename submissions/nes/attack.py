"""NES (Ilyas et al., ICML '18) against a rank oracle, as an aipbench code submission: the black-box attacker."""

from aipbench.attacks.nes import nes_rank_attack


class NES:
    """Gradient estimation from the oracle's ranks alone: 10 antithetic pairs of directions per step, each
    drawn from the item's own generator (``context.item_rng``), 50 steps on the default budget of 1,000
    queried images per cold item."""

    pairs = 10

    def run(self, context):
        noise = [context.item_rng(item) for item in context.cold_items]
        return nes_rank_attack(context.oracle, context.cold_images, noise, epsilon=context.epsilon, pairs=self.pairs)
