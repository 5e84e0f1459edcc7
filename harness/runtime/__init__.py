"""The compute the harness runs from Terraform state: Lambda functions and their triggers."""
