UPDATE projection_state SET name = ?1, through = ?2 WHERE id = 1
