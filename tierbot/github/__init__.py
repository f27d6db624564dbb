"""Pull requests on GitHub: reading them and posting the review (PyGithub, imported lazily)."""
