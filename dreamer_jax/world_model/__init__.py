"""The RSSM world model: encoder, recurrent latent dynamics, heads, losses, training and evaluation."""
