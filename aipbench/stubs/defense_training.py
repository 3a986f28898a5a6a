"""A training defense to start from: fine-tune the undefended ranker (``defends`` in submission.toml) with the
BPR loss (Rendle et al., UAI '09) while Gaussian noise perturbs the items' visual representations — a simple
smoothing recipe; AMR (Tang et al., TKDE '19) perturbs adversarially instead. The ranker it returns replaces
the undefended one for every attack."""

import copy

import numpy as np
import torch


class Defense:
    epochs = 2
    noise = 0.1  # noise std, relative to the spread of the catalog's representations
    learning_rate = 1e-3
    batch_size = 1024

    def train(self, context):
        model = copy.deepcopy(context.undefended).train()
        image_model = {id(p) for p in model.image_model.parameters()}  # the image model stays as it is
        params = [p.requires_grad_(True) for p in model.parameters() if id(p) not in image_model]
        catalog = model.catalog  # every item's visual representation (what the image model made of its image)
        sigma = self.noise * catalog.std()
        dataset, gen = context.dataset, torch.Generator().manual_seed(int(context.seed))
        users = torch.from_numpy(np.asarray(dataset.train_users, dtype=np.int64))
        items = torch.from_numpy(np.asarray(dataset.train_items, dtype=np.int64))
        negatives = torch.from_numpy(np.setdiff1d(np.arange(dataset.n_items), dataset.cold_items))
        optimizer = torch.optim.Adam(params, lr=self.learning_rate)
        for epoch in range(self.epochs):
            order = torch.randperm(len(users), generator=gen)
            for s in range(0, len(order), self.batch_size):
                batch = order[s : s + self.batch_size]
                u, i = users[batch], items[batch]
                j = negatives[torch.randint(len(negatives), (len(batch),), generator=gen)]
                with torch.enable_grad():
                    noisy_i = catalog[i] + sigma * torch.randn(catalog[i].shape, generator=gen)
                    noisy_j = catalog[j] + sigma * torch.randn(catalog[j].shape, generator=gen)
                    user, pos, neg = model.user_side(u), model.item_side(noisy_i, i), model.item_side(noisy_j, j)
                    x = (user.vec * (pos.vec - neg.vec)).sum(1) + pos.bias - neg.bias
                    loss = -torch.nn.functional.logsigmoid(x).mean()
                    optimizer.zero_grad()
                    loss.backward()
                optimizer.step()
            context.progress(epoch + 1, self.epochs)
        return model.eval().requires_grad_(False)
