"""CDS Hooks 2.0 service for back pain after lumbar spinal fusion."""
