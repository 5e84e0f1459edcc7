"""Terraform init/apply/show for the local env, and the typed Stack read from its state."""
