"""c-SEMA (paper §4.3) as an aipbench code submission: hook inset plus a line of text."""

from aipbench.attacks.sema import composite


class CSEMA:
    """The hook image at half size on the right edge, 'match your look' on a white strip at the bottom."""

    text = "match your look"
    inset = 0.5

    def run(self, context):
        return composite(context.cold_images, context.hook_image, text=self.text, inset=self.inset)
