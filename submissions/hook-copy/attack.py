"""The hook-copy control: the upper reference for hook-based attacks."""

from aipbench.attacks.sema import hook_copy


class HookCopy:
    def run(self, context):
        return hook_copy(context.cold_images, context.hook_image)
