"""Small shared pieces every receiver and metric uses: windows over frames / tiles / segments, colour,
noise estimation."""
