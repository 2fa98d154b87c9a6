SELECT name, through FROM projection_state WHERE id = 1
