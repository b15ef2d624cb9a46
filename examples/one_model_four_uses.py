"""One set of MAGNET weights, four uses: sentence embeddings, token states, infilling, generation.

python examples/one_model_four_uses.py [MODEL]   # default: ./magnet-llama
"""

import sys

import magnet_st

model = magnet_st.load_model(sys.argv[1] if len(sys.argv) > 1 else "magnet-llama")

# 1. Sentence embeddings (bidirectional attention, instruction prompt, final-token state)
embeddings = model.encode(["A dog runs in the park.", "A puppy is running outside.", "Taxes rose in May."])
print("similarity:", model.similarity(embeddings, embeddings)[0].tolist())

# 2. Token states (what the token-classification head reads)
states = model.encode(["Paris is in France."], output_value="token_embeddings", prompt="")[0]
print("token states:", tuple(states.shape))

# 3. Infilling with left and right context (hybrid attention)
print("infill:", magnet_st.infill(model, "I was thirsty, so [BLANK] and felt much better.", length=6).text)

# 4. Plain left-to-right generation (causal attention)
print("generate:", magnet_st.generate(model, "The capital of France is", max_new_tokens=12))
