"""Models, rules and AWS adapters shared by the Lambda functions, the GPU runner and the local stack."""
