"""Knowledge base: corpora, the shipped knowledge cards and the hybrid retrieval index."""
