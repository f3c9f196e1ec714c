# (rules of this stage group arrive with their issue)
