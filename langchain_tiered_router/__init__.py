"""langchain-tiered-router: send each Bedrock request to the cheapest tier that clears your bar."""
