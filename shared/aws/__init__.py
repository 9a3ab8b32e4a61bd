"""boto3 adapters: the only code that speaks to DynamoDB, SQS and S3."""
