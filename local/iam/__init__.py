"""IAM for the local stack: each process's policies from the synthesized template, enforced in front of moto.

``template`` synthesizes ``infra/`` (cached by content) and resolves each role's policies for the local
account; ``policy`` evaluates them; ``calls`` says what each DynamoDB, SQS or S3 request asks for;
``post_policy`` checks a form upload's signed policy; ``guard`` puts it all in front of moto; ``account``
holds the identities and the @connections check.
"""
