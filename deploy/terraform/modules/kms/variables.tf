variable "name" {
  description = "Name prefix of every resource (e.g. plinth-prod)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
