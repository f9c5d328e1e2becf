"""Test helpers: a CORS-less backend, mitmdump processes, a flow recorder, a raw HTTP client."""
