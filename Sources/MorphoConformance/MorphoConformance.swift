// Runs golden fixtures through the library (see Conformance.swift).
