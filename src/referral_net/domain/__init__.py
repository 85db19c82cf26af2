"""Domain services: one module per resource, keyword-only functions, explicit commits."""

# The search read model's session hooks are registered on import: any session that writes
# through the domain keeps the model in step (domain/search_model.py).
from referral_net.domain import search_model as search_model
