"""Model providers behind the gateway: an OpenAI-compatible client and the offline one."""
