"""kg2tool: turn a knowledge graph into verified tool-use instruction data for LLMs."""
