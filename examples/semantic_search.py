"""Semantic search with a MAGNET model: embed a small corpus, find the nearest texts to each query.

python examples/semantic_search.py [MODEL]   # default: ./magnet-llama (run `magnet-st quickstart` first)
"""

import sys

from sentence_transformers.util import semantic_search

import magnet_st

model = magnet_st.load_model(sys.argv[1] if len(sys.argv) > 1 else "magnet-llama")
corpus = [
    "A man is eating food.",
    "A man is riding a horse.",
    "A woman is playing the violin.",
    "Two men pushed carts through the woods.",
    "A monkey is playing drums.",
    "The stock market fell sharply on Monday.",
]
queries = ["Someone is having a meal.", "Shares dropped at the start of the week."]

corpus_embeddings = model.encode(corpus, convert_to_tensor=True)
query_embeddings = model.encode(queries, convert_to_tensor=True)
for query, hits in zip(queries, semantic_search(query_embeddings, corpus_embeddings, top_k=2)):
    print(query)
    for hit in hits:
        print(f"  {hit['score']:.3f}  {corpus[hit['corpus_id']]}")
