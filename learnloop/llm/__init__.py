"""Large models as a service: one gateway, providers, the tutor, graders and authoring."""
