output "refiner" { value = module.refiner }
output "batch" { value = module.batch }
output "ingest" { value = module.ingest }
output "broker" { value = module.broker }
output "tracker" { value = module.tracker }
output "images" {
  description = "What `make deploy` builds and pushes between its two applies."
  value       = module.images.builds
}
output "database_endpoint" { value = "${module.database.address}:${module.database.port}" }
output "broker_endpoint" { value = module.broker_mq.endpoint }
output "cache_url" { value = module.cache.url }
